"""AsyncVLA VLM node (camera views + task prompt to latched VL features, Qwen2.5-VL) and the camera bridge."""
