"""Widgets (``render_*``) and pure chart builders (``build_*_figure``) shared by the pages."""
