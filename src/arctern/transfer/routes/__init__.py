"""Transfer API routes, one module per URL family."""
