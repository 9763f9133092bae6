"""The controller's REST API (FastAPI).

    app.create_app(controller, inventory_factory, tokens)   the application
    tokens.TokenBook                                        bearer tokens and roles
    serve.listen / serve.RestServer                         the controller serves it
    files                                                   where its files are

Nothing is imported here: the CLI reads `tokens` and `files` without loading
FastAPI.
"""
