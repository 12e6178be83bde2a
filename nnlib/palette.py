"""The series' colours, one meaning each, shared by the matplotlib charts (``plots``) and the HTML
widgets (``widgets``), so a colour means the same thing in a chart and in a slider's bars.

Seaborn's "deep" palette: distinct for the common kinds of colour blindness, and calm in print.
"""

#: Tokens the sampler keeps (may be drawn); also the default bar colour.
KEPT = "#4c72b0"
#: Tokens the sampler's cut removes (can never be drawn).
DROPPED = "#c8ccd4"
#: The token that was drawn.
CHOSEN = "#dd8452"
#: Its label, where text must stay readable on white.
CHOSEN_TEXT = "#8c3b0c"
#: A threshold line: top_p's mass, a cut.
CUT = "#c44e52"
#: Cells that hold nothing (an empty cache slot, padding).
EMPTY = "#f4f4f4"
#: One colour per item of a series (shards, layers), in order.
SERIES = (KEPT, CHOSEN, "#55a868", CUT, "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
