"""The choices a training run accepts for where and how it computes, without importing torch (the
command line lists them in its help)."""

DEVICES = ("auto", "cpu", "cuda", "cuda:N")
PRECISION_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # autocast dtype, a torch attribute
