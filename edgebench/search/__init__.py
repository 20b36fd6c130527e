"""Budgeted search over variant methods (``edgebench search``): the most robust model that fits a device's budget,
measured on the device. The space and budget (:mod:`.space`), a trial as an ordinary variant of the plan
(:mod:`.trial`), the Optuna study (:mod:`.study`, the only module that imports Optuna), the front and the chosen
configuration (:mod:`.front`) and the chosen configuration as a plan (:mod:`.chosen`). Nothing here is imported
by ``import edgebench``."""
