"""Exporters: one module per model family, plus the ONNX -> ONNX steps profiles list.

Everything here may import torch and onnx; the runtime (``edgert``) never imports this
package except to resolve a family's exporter when ``edgert export`` runs.
"""
