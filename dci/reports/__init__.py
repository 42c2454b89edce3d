"""The report routes' work that is more than a view: what a request asks for, and the figures it gets."""
