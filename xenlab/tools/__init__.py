"""Small helpers behind the Makefile (copying labs, starting JupyterLab)."""
