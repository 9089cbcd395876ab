"""Studies: a reproduction's plan as data (``plan``) and the runner that starts, resumes and
finalizes its runs (``runner``). The report over a study's results is ``kdic.eval.report``."""

from .plan import Run, Study, load_study
from .runner import finalize, measure_missing, plan_table, run_study

__all__ = ["Run", "Study", "finalize", "load_study", "measure_missing", "plan_table", "run_study"]
