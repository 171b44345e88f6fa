"""A middleware that fails on one path: how an exception raised outside a view looks."""


class RaisingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.endswith("/explode"):
            raise RuntimeError("a middleware failed")
        return self.get_response(request)
