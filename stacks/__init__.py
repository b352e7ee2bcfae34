"""The CDK stack of the real-time RAG pipeline and the constructs it is assembled from."""
