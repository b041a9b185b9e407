"""Text clean-up around speech recognition: spoken entities to written form, keyterm correction, term packs."""
