"""backends/tts"""
