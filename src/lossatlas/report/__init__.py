"""Layer 9: figures and HTML reports built from stored sweep results only."""

from ._report import (
    CENSUS_FIGURES as CENSUS_FIGURES,
    FIGURES as FIGURES,
    Report as Report,
    build_report as build_report,
    summary_table as summary_table,
)
