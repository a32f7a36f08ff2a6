"""The Ray Serve application: `serve run serve_app:app` against a cluster where `forma3d up`
(or the entity runtime) is running; configuration comes from the environment."""

from forma3d.serving import application

app = application()
