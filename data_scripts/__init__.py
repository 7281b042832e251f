"""Download, verify and arrange the real datasets (``python -m data_scripts.<name> --help``)."""
