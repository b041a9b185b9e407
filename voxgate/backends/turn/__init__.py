"""backends/turn"""
