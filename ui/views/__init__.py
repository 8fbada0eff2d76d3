"""Page logic of the admin, in plain functions (tested without Gradio)."""
