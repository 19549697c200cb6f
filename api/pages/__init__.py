"""Server-rendered pages for shoppers and anchors (English and Simplified Chinese)."""
