"""edgert studio: a local app to open bundles and use them, in a browser or a terminal.

    edgert app demo-out                       # every bundle under demo-out, on 127.0.0.1
    edgert app BUNDLE --port 8000 --tui       # the terminal front-end instead

The web server and the terminal share one core (:mod:`.core`); both use only ``edgert``'s
public API. The web server needs the ``app`` extra (starlette, uvicorn).
"""
