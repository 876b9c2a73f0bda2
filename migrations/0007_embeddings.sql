-- 0007: embeddings (issue 13): vectors from the user's own ONNX image model. Stub; filled in next.
SELECT 1;
