"""backends/stt"""
