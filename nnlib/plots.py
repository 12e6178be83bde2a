"""Plots shared by the notebooks (matplotlib, imported here only).

Every function takes an optional ``ax`` and returns the axes it drew on, so a notebook can put
several on one figure. Figure sizes are always explicit: nbval compares a figure's text repr.
"""
from __future__ import annotations


# ---- 01 SGD from scratch -------------------------------------------------------------------


# ---- 02 spaCy pipelines --------------------------------------------------------------------


# ---- 03 Loading Llama ----------------------------------------------------------------------


# ---- 04 Step-through generation ------------------------------------------------------------
