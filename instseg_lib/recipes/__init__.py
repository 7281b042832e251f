"""Each paper's experiments as frozen configs plus the functions that run them.

``recipes.wu2016``: FCRN semantic nets, the localization net and Hough grouping (Tables 1-7).
"""
