"""The admin web app: REST API and Gradio pages."""
