"""Build llama.cpp's llama-server once into $LLAMA_CACHE (placeholder: filled in by the bench work)."""
