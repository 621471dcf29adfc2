"""The mission planner: a LangGraph graph that turns a mission spec into calls and a result.

It depends only on the ``MissionOps`` protocol it declares (``planner.ops``); the service
(``mission_server.services.ops``) implements it. It never imports the service or its storage.
"""
