"""A small function app for testing the local runner's triggers and bindings (not the product)."""

from __future__ import annotations

import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
CONNECTION = "AzureWebJobsStorage"


@app.queue_trigger(arg_name="msg", queue_name="runner-fail", connection=CONNECTION)
def always_fails(msg: func.QueueMessage) -> None:
    raise RuntimeError(f"cannot handle {msg.get_body()!r}")


@app.queue_trigger(arg_name="msg", queue_name="runner-in", connection=CONNECTION)
@app.queue_output(arg_name="out", queue_name="runner-out", connection=CONNECTION)
def echo(msg: func.QueueMessage, out: func.Out[str]) -> None:
    out.set(json.dumps({"body": msg.get_body().decode(), "dequeue_count": msg.dequeue_count}))


@app.queue_trigger(arg_name="msg", queue_name="runner-flaky", connection=CONNECTION)
@app.queue_output(arg_name="out", queue_name="runner-out", connection=CONNECTION)
def flaky(msg: func.QueueMessage, out: func.Out[str]) -> None:
    out.set("never sent: the function raises after setting it")
    if msg.dequeue_count < 2:
        raise RuntimeError("first attempt fails")
    out.set(f"attempt {msg.dequeue_count}")


@app.timer_trigger(arg_name="timer", schedule="%TICK_SCHEDULE%", use_monitor=False)
@app.queue_output(arg_name="out", queue_name="runner-ticks", connection=CONNECTION)
def tick(timer: func.TimerRequest, out: func.Out[str]) -> None:
    out.set(json.dumps({"past_due": timer.past_due}))


@app.route(route="items/{item_id}/parts/{part?}", methods=["GET"])
def item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"route": dict(req.route_params), "params": dict(req.params)}),
                             mimetype="application/json")


@app.route(route="echo", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def echo_body(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.get_body(), mimetype="application/octet-stream")


@app.route(route="boom", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise ValueError("an unexpected failure")
