"""Amazon Nova Lite through Bedrock ConverseStream: the answerer of ``ask.py`` on AWS."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from rtrag.aws.errors import AWS_ERRORS, classify
from rtrag.workflows.answering import SYSTEM_PROMPT, Answer, cited, fit_prompt
from rtrag.workflows.retrieval import Hit


class NovaAnswerer:
    """Amazon Nova through Bedrock ConverseStream; streams text to ``on_text`` as it is generated."""

    def __init__(self, client: Any, *, model_id: str, max_tokens: int = 1024, temperature: float = 0.2):
        self.client = client
        self.model_id = model_id
        self.max_tokens = max_tokens
        self.temperature = temperature

    def answer(self, question: str, hits: Sequence[Hit], *,
               on_text: Callable[[str], None] = lambda text: None) -> Answer:
        start = time.perf_counter()
        parts: list[str] = []
        usage: dict[str, Any] = {}
        stop_reason: str | None = None
        prompt, used = fit_prompt(question, hits)
        try:
            response = self.client.converse_stream(
                modelId=self.model_id,
                system=[{"text": SYSTEM_PROMPT}],
                messages=[{"role": "user", "content": [{"text": prompt}]}],
                inferenceConfig={"maxTokens": self.max_tokens, "temperature": self.temperature})
            for event in response["stream"]:
                if "contentBlockDelta" in event:
                    text = event["contentBlockDelta"].get("delta", {}).get("text", "")
                    if text:
                        parts.append(text)
                        on_text(text)
                elif "metadata" in event:
                    usage = event["metadata"].get("usage", {})
                elif "messageStop" in event:
                    stop_reason = event["messageStop"].get("stopReason")
        except AWS_ERRORS as exc:  # a stream's own errors too: botocore raises them as EventStreamError
            raise classify(exc, action=f"Bedrock ConverseStream ({self.model_id})") from exc
        text = "".join(parts).strip()
        return Answer(text=text, sources=cited(text, used), model_id=self.model_id,
                      generate_ms=(time.perf_counter() - start) * 1000, usage=usage, stop_reason=stop_reason,
                      left_out=len(hits) - len(used))
