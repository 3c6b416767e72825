"""What the commands that analyse a model share: the model options and one call of the pipeline.

``analyze``, ``query --model`` and ``serve --model`` all analyse through
:func:`threatgraph.analysis.pipeline.analyze` (one pipeline: validation, closure, knowledge view, rules,
techniques, risk, paths), and report a refused model the same way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from threatgraph.analysis.engine import Analysis
    from threatgraph.analysis.pipeline import ModelInvalid


def add_model_options(p: argparse.ArgumentParser) -> None:
    """``--force`` and ``--ml-classes FILE``, as ``analyze`` has them."""
    p.add_argument("--force", action="store_true",
                   help="analyse a hand-written model even when validation finds violations")
    p.add_argument("--ml-classes", metavar="FILE", help="your phrases giving imported (non-RDF) elements their tgml: "
                   "ML class, tried before the shipped ones (data/ml-classes.conf; docs/interchange.md)")


def report_refused(err: ModelInvalid) -> None:
    """Print why the pipeline refused the model: the loader's warnings, the error, each violation, the hint."""
    for w in err.warnings:
        print(f"threatgraph: warning: {w}", file=sys.stderr)
    print(f"threatgraph: error: {err.message}:", file=sys.stderr)
    for issue in err.report.violations:
        print(f"  - {issue.focus_label} <{issue.focus}>: {issue.message}", file=sys.stderr)
    print(f"  hint: {err.hint}", file=sys.stderr)


def report_warnings(analysis: Analysis, forced: bool) -> None:
    """Print the analysis's warnings, and that validation violations were overridden when ``forced``
    (``--force``; an imported model analysed despite violations has its own warning among the others)."""
    for w in analysis.warnings:
        print(f"threatgraph: warning: {w}", file=sys.stderr)
    if forced and analysis.validation is not None and analysis.validation.violations:
        n = len(analysis.validation.violations)
        print(f"threatgraph: warning: analysing despite {n} validation violation(s) (--force)", file=sys.stderr)


def run_pipeline(args: argparse.Namespace, models: Sequence[str], **options: Any) -> Analysis | None:
    """Analyse ``models`` with the command's ``--force`` / ``--ml-classes`` and ``options`` (passed to the
    pipeline); print the warnings. None (after printing why) when the model is refused: exit 1."""
    from threatgraph.analysis.pipeline import ModelInvalid, analyze

    forced = bool(getattr(args, "force", False))
    try:
        analysis = analyze(models, force=forced, ml_classes=getattr(args, "ml_classes", None), **options)
    except ModelInvalid as err:
        report_refused(err)
        return None
    report_warnings(analysis, forced)
    return analysis
