"""Everything printed or drawn: rich/markdown/latex/csv/json tables, progress bars and live tables, figures."""
