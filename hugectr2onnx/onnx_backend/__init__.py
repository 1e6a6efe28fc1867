"""ONNX backend: emission of the IR as an ONNX graph."""
