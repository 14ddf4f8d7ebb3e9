"""The composition root: one typed :class:`Settings` in, indexes, models, scorers,
compressors and the agent out (:mod:`branchwise.assembly.root`).

``bw.ask``, the CLI, the chat app, the HTTP and LangGraph servers and every evaluation
system that runs the agent assemble it here, so what is measured is what users run.
"""
