"""The run inspection pages (Missions, Run, Conversation): server-rendered HTML over the
service layer, served by ``mission serve --http`` beside ``/mcp`` (behind its token) and by
``mission ui`` on loopback. See ``app.build_web_app``."""
