"""What runs leave on disk and how it comes back: the run record (``runs/<name>/``),
checkpoint files (atomic, verified), ONE loader for every format (Lightning ``.ckpt``, DCP
folder, consolidated safetensors, HF LLaDA / iLLaDA folder, run directory) and HF interop.

May import the core, diffusion, sampling, data and config; never training or a command."""
