// The token is in the address's fragment, which browsers never send to a server.
const form = document.getElementById("set-password");
const message = document.getElementById("message");
const token = new URLSearchParams(location.hash.slice(1)).get("token");
if (!token) {
  message.textContent = "This link is incomplete.";
  form.hidden = true;
}
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("/api/v1/auth/set-password", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token, password: document.getElementById("password").value }),
  });
  if (response.status === 204) {
    history.replaceState(null, "", location.pathname);
    form.hidden = true;
    message.textContent = "Your password is set. You can sign in now.";
    document.getElementById("signed-up").hidden = false;
    return;
  }
  const answer = await response.json().catch(() => ({}));
  const detail = Array.isArray(answer.detail)
    ? answer.detail.map((d) => d.msg).join("; ")
    : answer.detail;
  message.textContent = detail || "Something went wrong; try again.";
});
