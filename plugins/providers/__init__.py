"""Built-in execution-provider plugins (one ONNX Runtime provider per module)."""
