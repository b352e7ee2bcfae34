"""Domain code of the real-time RAG pipeline, shared by the Lambda functions, the scripts and local mode."""
