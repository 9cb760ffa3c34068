"""One router per resource; each reads the app's jobs and models from `request.app.state`."""
