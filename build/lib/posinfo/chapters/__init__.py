"""One module per chapter notebook (``chNN_<name>`` for ``book/NN_<name>.ipynb``) and the distributed
ImageNet AugShift script. No chapter module imports another, and nothing outside this package
imports one."""
