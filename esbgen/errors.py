"""Errors an operator sees as one line, never as a traceback."""


class EsbgenError(Exception):
    """A refusal or failure explained to the operator; exit status 1."""

    exit_code = 1


class UsageError(EsbgenError):
    """The command line itself is wrong; exit status 2."""

    exit_code = 2


class PluginError(EsbgenError):
    """A plugin raised inside a hook."""

    def __init__(self, plugin: str, hook: str, error: BaseException):
        self.plugin, self.hook, self.error = plugin, hook, error
        super().__init__(f"plugin {plugin!r} failed in hook {hook}: {type(error).__name__}: {error}")


class Interrupted(EsbgenError):
    """Ctrl-C (SIGINT): the message says what state the tree is in; exit status 130, as a shell expects."""

    exit_code = 130
