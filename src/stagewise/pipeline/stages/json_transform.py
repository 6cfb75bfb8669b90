"""json_transform: rewrite each document with a Jinja template that renders a JSON object.

The template is rendered in the sandboxed environment of `stagewise.pipeline.templating`
(undefined values are errors) with, in any case (DOC, doc, Doc...):

* ``DOC``: the candidate's public document (its fields plus document_id, collection_id,
  score and scores);
* ``INPUT``: the execution's inputs;
* ``CONTEXT``: ``namespace_id`` and the `output_alias` contexts of earlier stages;
* ``STAGE``: earlier stages' outputs by stage name (``documents``, the first 100, and
  ``count``), as parameter templates see them.

The rendered text must parse (``json.loads``) as a JSON object; the object becomes the
document's fields, while document_id, collection_id, score and scores stay the candidate's
(keys of those names in the object are shadowed by them). A document whose render fails
(missing value, sandbox violation, any exception) or whose output is not a JSON object is
dropped, counted in ``metadata["dropped"]`` with the first error and a warning; with
`fail_on_error` the first such failure fails the stage instead. A template that does not parse
is refused at creation by `check_templates`, and fails the stage if it reaches a run.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from jinja2 import Template, TemplateSyntaxError
from pydantic import Field

from stagewise.domain.records import CollectionRecord
from stagewise.errors import StageFailed, ValidationFailed
from stagewise.pipeline.registry import register
from stagewise.pipeline.stage import (
    Candidate,
    Category,
    Stage,
    StageContext,
    StageParams,
    StageResult,
)
from stagewise.pipeline.template_limits import TemplateLimitExceeded
from stagewise.pipeline.templating import ENV, render_template, scope

CHECK_EVERY = 256
STAGE_DOCUMENTS_VISIBLE = 100
DEFAULT_TEMPLATE = (
    '{"id": "{{ DOC.document_id }}", "content": {{ DOC.content | tojson }}, '
    '"score": {{ DOC.score }}}'
)


class JsonTransformParams(StageParams):
    template: str = Field(
        default=DEFAULT_TEMPLATE,
        min_length=1,
        description="Jinja2 template rendering a JSON object; sees DOC, INPUT, CONTEXT, STAGE",
    )
    fail_on_error: bool = Field(
        default=False,
        description="Fail the stage on the first document that does not transform "
        "(default: drop it and count it in the stage metadata)",
    )


class _TransformError(Exception):
    pass


@register
class JsonTransform(Stage):
    stage_id: ClassVar[str] = "json_transform"
    category: ClassVar[Category] = "apply"
    description: ClassVar[str] = (
        "Rewrite each document with a sandboxed Jinja template that renders a JSON object "
        "(documents that fail to render are dropped, or fail the stage with fail_on_error)"
    )
    icon: ClassVar[str] = "braces"
    Params = JsonTransformParams
    credits_per_document: ClassVar[float] = 0.0005
    per_document_params: ClassVar[frozenset[str]] = frozenset({"template"})

    @classmethod
    def validate_for(cls, params: StageParams, collections: list[CollectionRecord]) -> None:
        cls.check_templates(params)

    @classmethod
    def check_templates(cls, params: StageParams) -> None:
        """Refuse a template that does not parse (called when a retriever is created)."""
        cls._compile(params)

    @staticmethod
    def _compile(params: StageParams) -> Template:
        p: JsonTransformParams = params  # type: ignore[assignment]
        try:
            return ENV.from_string(p.template)
        except TemplateSyntaxError as exc:
            raise ValidationFailed(
                f"json_transform template does not parse: {exc.message} (line {exc.lineno})",
                code="invalid_template",
                template=p.template,
                location="parameters.template",
            ) from exc

    @staticmethod
    def transform(template: Template, variables: dict[str, Any]) -> dict[str, Any]:
        try:
            text = render_template(template, variables)
        except TemplateLimitExceeded:
            raise  # a bound of the request, not one document's failure
        except Exception as exc:  # any render failure, sandbox violations included
            raise _TransformError(f"render failed: {type(exc).__name__}: {exc}") from exc
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise _TransformError(f"output is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise _TransformError(f"output is a JSON {type(body).__name__}, not an object")
        return body

    def run(self, ctx: StageContext, candidates: list[Candidate]) -> StageResult:
        p: JsonTransformParams = self.params  # type: ignore[assignment]
        ctx.budget.check()
        template = self._compile(p)
        context = {"namespace_id": ctx.namespace_id, **ctx.context}
        stages = {
            name: {
                "documents": [c.public() for c in cands[:STAGE_DOCUMENTS_VISIBLE]],
                "count": len(cands),
            }
            for name, cands in ctx.stage_outputs.items()
        }
        out: list[Candidate] = []
        dropped = 0
        first_error: str | None = None
        first_error_document: str | None = None
        for i, c in enumerate(candidates):
            if i % CHECK_EVERY == 0:
                ctx.budget.check()
            variables = scope(inputs=ctx.inputs, doc=c.public(), context=context, stages=stages)
            try:
                body = self.transform(template, variables)
            except _TransformError as exc:
                message = str(exc)
                if p.fail_on_error:
                    raise StageFailed(
                        f"json_transform failed on document '{c.document_id}': {message}",
                        document_id=c.document_id,
                    ) from exc
                dropped += 1
                if first_error is None:
                    first_error, first_error_document = message, c.document_id
                continue
            out.append(
                Candidate(
                    document_id=c.document_id,
                    collection_id=c.collection_id,
                    score=c.score,
                    doc=body,
                    scores=c.scores,
                )
            )
        metadata: dict[str, Any] = {"transformed": len(out), "dropped": dropped}
        if first_error is not None:
            metadata["first_error"] = first_error
            metadata["first_error_document_id"] = first_error_document
            ctx.warnings.append(
                f"json_transform dropped {dropped} of {len(candidates)} documents; "
                f"first error (document '{first_error_document}'): {first_error}"
            )
        return StageResult(out, metadata=metadata)
