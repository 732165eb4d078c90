"""Model families, one folder per checkpoint ``model_type``."""
