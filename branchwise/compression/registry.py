"""The context compressors, by name (``--compression``, ``CompressionConfig.mode``).

Each factory is ``factory(config, *, llm=None, encoder=None, reranker=None) -> Compressor``;
``needs`` says what the composition root must supply (the LLM, the dual encoder); the
reranker, when the settings name one, is passed to every factory (the extractive selection
mixes it in).
"""

from __future__ import annotations

from branchwise.registry import Registry

COMPRESSORS: Registry = Registry("compressor", "--compression / CompressionConfig.mode")
COMPRESSORS.register("none", "branchwise.compression.base:no_compressor", "whole items in rank order while they fit")
COMPRESSORS.register("extractive", "branchwise.compression.extractive:extractive_compressor",
                     "RECOMP extractive: the sentences a dual encoder ranks highest", needs=("encoder",))
COMPRESSORS.register("abstractive", "branchwise.compression.abstractive:abstractive_compressor",
                     "RECOMP abstractive: an LLM summary, empty when the evidence is irrelevant", needs=("llm",))
COMPRESSORS.register("color", "branchwise.compression.color:color_compressor",
                     "CoLoR-style: the shortest candidate the LLM judges sufficient", needs=("llm", "encoder"))
