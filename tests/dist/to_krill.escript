#!/usr/bin/env escript
-mode(compile). %% not erl_eval: it matched <<>> against <<"hi">>
%% Erlang -> krill and back: sends to the krill process registered as
%% `echo` on the krill node, by name, a {krill, Tag, Binary} (an ordinary
%% message there) and a term carrying our pid; expects the reply bytes as
%% {krill, 8, <<"hi">>} and a term carrying a krill pid, to which it sends.
%% Exit 0 when all came; another status names the step that failed.
main([Krill]) ->
    K = list_to_atom(Krill),
    {echo, K} ! {krill, 7, <<"hi">>},
    {echo, K} ! {hello, self()},
    receive {krill, 8, <<"hi">>} -> ok after 10000 -> halt(2) end,
    P = receive {reply, Pid} when is_pid(Pid) -> Pid after 10000 -> halt(3) end,
    case node(P) of K -> ok; _ -> halt(4) end,
    P ! {krill, 9, <<"bye">>},
    timer:sleep(500), %% halt does not wait for the connection's buffer
    halt(0).
