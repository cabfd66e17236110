"""Console scripts of ``pyramid_immortus`` (``immortus-jobs``)."""
