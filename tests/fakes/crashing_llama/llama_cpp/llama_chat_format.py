"""The one name the backend imports from llama_cpp.llama_chat_format."""


class Jinja2ChatFormatter:
    def __init__(self, *args, **kwargs) -> None:
        pass
