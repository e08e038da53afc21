"""Face models (built-in, BFM, ICT-FaceKit), channels, coefficient layouts, importers and exporters."""
