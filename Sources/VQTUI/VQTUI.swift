// The live view (vqtap top): model snapshot -> views -> screen buffer -> terminal.
