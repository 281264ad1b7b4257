"""upscale"""
