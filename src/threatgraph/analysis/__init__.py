"""The analysis pipeline, one module per stage, data flowing down once:
model → closure → validation → rules → techniques → risk → paths → findings (read back for renderers)."""
