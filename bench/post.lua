-- wrk script: POST a 100-byte JSON body (the same request to both servers).
wrk.method = "POST"
wrk.body = '{"bench":"http_ingress","pad":"' .. string.rep("x", 67) .. '"}'
wrk.headers["Content-Type"] = "application/json"
assert(#wrk.body == 100, "body is " .. #wrk.body .. " bytes")
