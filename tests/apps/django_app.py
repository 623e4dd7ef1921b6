"""A one-file Django project: routes, JSON, form POST, file upload, streaming, error page."""

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="mpmd-tests-not-secret",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        INSTALLED_APPS=[],
        USE_TZ=True,
        DATA_UPLOAD_MAX_MEMORY_SIZE=10 * 1024 * 1024,
        FILE_UPLOAD_MAX_MEMORY_SIZE=10 * 1024 * 1024,
        LOGGING_CONFIG=None,
    )
    django.setup()

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


def index(request):
    return HttpResponse("Hello from Django")


def json_view(request):
    return JsonResponse({"ok": True, "get": request.GET.dict(), "path": request.path,
                         "script_name": request.META.get("SCRIPT_NAME", "")})


@csrf_exempt
def form(request):
    return JsonResponse({"form": request.POST.dict(), "method": request.method})


@csrf_exempt
def upload(request):
    f = request.FILES["file"]
    data = f.read()
    return JsonResponse({"name": f.name, "size": len(data)})


def stream(request):
    return StreamingHttpResponse((f"row {i}\n" for i in range(10)), content_type="text/plain")


def boom(request):
    raise RuntimeError("django boom")


urlpatterns = [
    path("", index),
    path("json", json_view),
    path("form", form),
    path("upload", upload),
    path("stream", stream),
    path("boom", boom),
]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
