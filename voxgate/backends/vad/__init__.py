"""backends/vad"""
